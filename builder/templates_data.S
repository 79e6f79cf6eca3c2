/* Embeds templates/ into the binary; see templates.h. */
	.section .rodata
	.global udfb_tpl_server_py_start
	.global udfb_tpl_server_py_end
	.global udfb_tpl_dockerfile_start
	.global udfb_tpl_dockerfile_end
udfb_tpl_server_py_start:
	.incbin "templates/server.py"
udfb_tpl_server_py_end:
udfb_tpl_dockerfile_start:
	.incbin "templates/Dockerfile.in"
udfb_tpl_dockerfile_end:
	.section .note.GNU-stack,"",@progbits
