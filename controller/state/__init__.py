"""Local persistence: the SQLite history store (journal) and the file lock that allows one writer.

The azureblob equivalents (blob with ETag-guarded writes, blob lease) live in controller.azure.blob_store;
both sides implement controller.model.history.HistoryStore / WriterLock.
"""
