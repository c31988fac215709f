"""What people look at: panels, GIFs, the report, the paper figure and the teaching view."""
