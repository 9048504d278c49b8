"""The producer side: schedule_action and schedule_many, and the handles that read results."""
