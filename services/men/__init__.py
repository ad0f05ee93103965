"""The men provider service: pupils' schooling and scholarship from the Éducation nationale."""
