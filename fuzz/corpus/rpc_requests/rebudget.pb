
	candidate