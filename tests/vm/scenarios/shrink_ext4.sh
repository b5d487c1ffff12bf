body_shrink ext4
