"""The c2s provider service: complémentaire santé solidaire through the Sécurité sociale gateway."""
