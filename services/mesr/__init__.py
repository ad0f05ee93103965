"""The mesr provider service: student status from the Ministère de l'Enseignement supérieur."""
