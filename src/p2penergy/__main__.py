from p2penergy.cli import main

main()
