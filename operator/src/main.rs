fn main() {
    print!("{}", beer_meetup_operator::crd::crd_yaml().expect("crd"));
}
