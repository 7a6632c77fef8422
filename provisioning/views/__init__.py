"""Staff views of the User Mapping flow, inside the Django admin (wrapped in admin.site.admin_view in urls.py)."""
