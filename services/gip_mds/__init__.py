"""The gip_mds provider service: service civique contracts from the GIP-MDS's déclarations sociales."""
