p=deep
for i in $(seq 1 40); do p=$p/level-$i; mkdir -p "$p"; echo "$i" > "$p/file-$i"; done
for i in $(seq 1 50); do mkdir -p deep/wide/d$i; echo $i > deep/wide/d$i/f; done
