"""What ships to the declarative pipeline: its datasets' functions, settings and expectations (docs/design.md)."""
