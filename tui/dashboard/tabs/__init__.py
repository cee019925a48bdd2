"""The dashboard's tabs other than the profile tab: the lab (`lab`) and training (`train`)."""
