body_rewrite ext4
