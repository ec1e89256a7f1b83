mod wire; fn main() {}
