mkdir -p emptydir sub/empty2 sub/x && echo f > sub/x/f && chmod 750 sub/empty2
