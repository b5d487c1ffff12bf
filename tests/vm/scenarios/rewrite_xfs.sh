body_rewrite xfs
