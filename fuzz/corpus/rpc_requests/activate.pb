

nordstad/1	candidate