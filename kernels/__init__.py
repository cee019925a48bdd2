"""Pure compute: layers, references, kernels, strategies and the memory lab's native loops."""

from partui.kernels.runtime import jitcache, numba_threads

# Before any module here imports numba: compiled kernels go to the user's cache folder,
# which works where site-packages is read-only; numba's pool has a thread per CPU however
# the importing thread is pinned.
jitcache.configure()
numba_threads.configure()
