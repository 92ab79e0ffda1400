from obliviate.cli import main

# Guarded: processes started with "spawn" (the TOFU bench trains its two models side by side) import it.
if __name__ == "__main__":
    main()
