"""The ants provider service: vehicle registration extracts from the SIV, for FranceConnect users."""
