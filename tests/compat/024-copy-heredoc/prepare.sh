# the files buildah copies instead of the heredocs (Dockerfile.buildah)
mkdir hd && echo 'hello env' > hd/greeting && echo 'literal $WHO' > hd/literal && echo 'into a dir' > hd/EOT
printf '#!/bin/sh\necho "arg"\n' > hd/script && echo aaa > hd/A && echo bbb > hd/B
chmod 644 hd/*
