"""The cnaf provider service: CNAF and MSA benefits through the Sécurité sociale gateway."""
