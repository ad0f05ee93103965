"""Start the gip_mds service: ``python -m services.gip_mds``."""

from services.gip_mds.app import GIP_MDS

if __name__ == "__main__":
    GIP_MDS.run()
