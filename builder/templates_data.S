/* Embeds templates/ into the binary; see templates.h. */
	.section .rodata
	.global udfb_tpl_server_py_start
	.global udfb_tpl_server_py_end
	.global udfb_tpl_dockerfile_start
	.global udfb_tpl_dockerfile_end
	.global udfb_tpl_db_stub_start
	.global udfb_tpl_db_stub_end
	.global udfb_tpl_db_downloader_start
	.global udfb_tpl_db_downloader_end
	.global udfb_tpl_guard_py_start
	.global udfb_tpl_guard_py_end
	.global udfb_tpl_run_site_start
	.global udfb_tpl_run_site_end
udfb_tpl_server_py_start:
	.incbin "templates/server.py"
udfb_tpl_server_py_end:
udfb_tpl_dockerfile_start:
	.incbin "templates/Dockerfile.in"
udfb_tpl_dockerfile_end:
/* Databend's own templates (script.c recognises scripts rendered from them)
 * and the wrapper that runs Databend's stub behind the token check. */
udfb_tpl_db_stub_start:
	.incbin "templates/databend/server_stub.py.tpl"
udfb_tpl_db_stub_end:
udfb_tpl_db_downloader_start:
	.incbin "templates/databend/import_downloader.sh"
udfb_tpl_db_downloader_end:
udfb_tpl_guard_py_start:
	.incbin "templates/databend/guard.py"
udfb_tpl_guard_py_end:
udfb_tpl_run_site_start:
	.incbin "templates/databend/run_site.py"
udfb_tpl_run_site_end:
	.section .note.GNU-stack,"",@progbits
