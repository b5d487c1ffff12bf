body_growth xfs
