"""Plain NumPy twins of the Numba kernels, one module per subpackage (as STUMPY keeps its
naive implementations apart from the tests that use them)."""
