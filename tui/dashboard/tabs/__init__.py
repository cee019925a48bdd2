"""The dashboard's tabs: profile (`profile`, with `replay`: a saved run repeat by repeat),
the lab (`lab`) and training (`train`); `base`: what every tab is."""
