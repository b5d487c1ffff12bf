body_growth ext4
