"""Pure compute: layers, references, kernels, strategies and the memory lab's native loops."""

from partui.kernels.runtime.jitcache import configure as _configure_numba_cache

# Before any module here imports numba: compiled kernels go to the user's cache folder,
# which works where site-packages is read-only.
_configure_numba_cache()
