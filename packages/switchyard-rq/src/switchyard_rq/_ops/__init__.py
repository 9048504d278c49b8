"""Operations: the ``switchyard`` subcommands of the transport, ``top`` and the job statistics."""
