import ArgumentParser
import GraftVision

extension GraftCommand {
    struct DemoData: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "demo-data",
            abstract: "Write a small synthetic two-class image set (cats and dogs in Kaggle's naming) for trying train and evaluate offline."
        )

        @Argument(help: "The folder to write (DIR/train/cat.N.jpg, dog.N.jpg, some as PNG).")
        var directory: String

        @Option(name: .customLong("per-class"), parsing: .unconditional, help: "Images per class.")
        var perClass = 100

        @Option(parsing: .unconditional, help: "Seed for the pictures.")
        var seed: UInt64 = 0

        func validate() throws {
            guard perClass >= 4 else { throw ValidationError("--per-class must be at least 4 (train, validation and test need images)") }
            try Limits.check("--per-class", perClass, 4...Limits.imagesPerClass)
        }

        func run() throws {
            _ = try SyntheticImages.write(to: directory, perClass: perClass, seed: seed, layout: .kaggle)
            print("wrote \(2 * perClass) images to \(directory)")
        }
    }
}
