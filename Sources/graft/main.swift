import GraftCLI

GraftCommand.main(arguments: nil)
