"""Convert a Hugging Face BERT folder into this project's (PaddleNLP's) checkpoint layout.

    python convert_checkpoint.py --from_hf HF_DIR --output_dir OUT_DIR [--safe_serialization]

Reads config.json and model.safetensors (or pytorch_model.bin, read without torch), renames every weight
to PaddleNLP's name, transposes Linear weights ([out, in] in PyTorch, [in, out] in Paddle) and writes
model_state.pdparams (or model.safetensors), model_config.json, config.json, vocab.txt and
tokenizer_config.json. A masked-LM head (cls.predictions.*) and a sequence classifier are kept.
A Hugging Face name (org/name) given to any script is downloaded and converted this way on first use.
"""
from tinybert import cli

import argparse

from tinybert.models.convert import convert_hf_checkpoint


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    parser.add_argument("--from_hf", required=True, help="Hugging Face BERT folder (config.json + weights).")
    parser.add_argument("--output_dir", required=True, help="Folder to write the converted checkpoint to.")
    parser.add_argument("--safe_serialization", action="store_true",
                        help="Write model.safetensors instead of model_state.pdparams (a pickle).")
    parser.add_argument("--overwrite_output_dir", "--overwrite", dest="overwrite_output_dir", action="store_true",
                        help="Replace files in a non-empty OUTPUT_DIR.")
    args = parser.parse_args(argv)
    out = convert_hf_checkpoint(args.from_hf, args.output_dir, args.safe_serialization, args.overwrite_output_dir)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
