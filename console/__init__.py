"""The web console of the mesh: public pages and the operators' pages, in French, on the DSFR."""
