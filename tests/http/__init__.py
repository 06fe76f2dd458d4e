# Black-box HTTP tests: they start the real `agora` executable ($AGORA_BIN)
# on 127.0.0.1 with a system-chosen port and a fresh data folder.
