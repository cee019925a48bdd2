"""The two front ends: the text command line (`cli`) and the Textual dashboard (`dashboard`),
and the plain text they share (`text`). `cli` starts the dashboard; the dashboard never
imports the command line.
"""
