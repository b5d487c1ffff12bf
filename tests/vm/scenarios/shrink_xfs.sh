body_shrink xfs
