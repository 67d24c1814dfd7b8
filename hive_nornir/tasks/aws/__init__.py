"""Tasks for AWS (boto3): none yet."""
