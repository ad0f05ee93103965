"""The cnous provider service: scholarship status of higher-education students."""
