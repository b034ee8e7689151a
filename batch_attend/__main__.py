"""``python -m batch_attend`` runs the same command as the ``batch-attend`` script."""

from batch_attend.cli import main

if __name__ == "__main__":
    main()
