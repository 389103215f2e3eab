c2
