"""Small helpers every layer may use and that import nothing of the package: the only uses of
other projects' private APIs (``compat``), which database errors mean a lost connection
(``dberrors``), and text made safe for logs and terminals (``text``)."""
