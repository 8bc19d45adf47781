"""Shape latent spaces, one module per idea (``from latentjax.shapes import furniture, deepsdf``).

``primitives`` (exact SDFs, ``Shape``), ``furniture`` (procedural chairs, tables, sofas), ``samples``
(surface points, DeepSDF samples, oriented point clouds), ``meshes`` (PLY in, OBJ/PLY out),
``deepsdf`` (the auto-decoder), ``render`` (sphere tracing, marching cubes).
"""
