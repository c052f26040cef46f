
case-17