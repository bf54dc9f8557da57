"""Built-in problems: each module here is an ordinary hesscli objective file.

Read any of them to learn the objective-file protocol; ``hesscli problems``
lists them with their ``-p`` parameters.
"""
