"""`python -m fedledger …`: the `fedledger` command, immune to same-named folders in the current directory."""
from fedledger.module_path import isolate_from_cwd

if __name__ == "__main__":
    isolate_from_cwd()
    from fedledger.cli import main

    main()
