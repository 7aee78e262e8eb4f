"""The pages people read (HTML): their routes (routes), rendering, the event page, the report
pages (public montage, audit, status) and the audit's traces and diagrams."""
