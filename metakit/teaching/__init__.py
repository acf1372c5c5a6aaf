"""The classroom: exercise checks, student copies, the widget playground, toy problems, the demo tour."""
