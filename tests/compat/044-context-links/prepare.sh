echo f > f && ln f hard-f && ln -s f link-to-f && mkdir d && ln -s ../f d/up && ln -s nowhere dangling
chmod 4755 f
chmod 1777 d
mkdir g && chmod 2755 g
