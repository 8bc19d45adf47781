"""The application over the library: the ``latentjax`` console script, the demo report."""
