mkdir -p t/sub t/empty && echo a > t/a && echo b > t/sub/b && ln -s a t/link && ln t/a t/hard && chmod 4755 t/sub/b
chown 1000:1000 t/sub
tar --numeric-owner --sort=name -C t -cf plain.tar .
tar --numeric-owner --sort=name -C t -czf gz.tar.gz .
tar --numeric-owner --sort=name -C t -cjf bz.tar.bz2 .
tar --numeric-owner --sort=name -C t -cJf xz.tar.xz .
rm -rf t
