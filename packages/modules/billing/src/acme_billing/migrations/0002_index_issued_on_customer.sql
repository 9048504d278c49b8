CREATE INDEX invoices_issued_on ON invoices (issued_on, id);
CREATE INDEX invoices_customer ON invoices (customer_id, issued_on);
